// The hostnet stack program: reads and validates the stack config, then rolls the fleet out in
// batches — each batch's hosts depend on the previous batch's health gate, so a failing canary
// stops the rollout before the rest of the fleet is touched.
import * as pulumi from "@pulumi/pulumi";
import { HostTopology } from "../components/hostTopology";
import { vmKey } from "../components/spec";
import { RolloutGate } from "../providers/kinds/hostHealth";
import type { ConnectionInput } from "../providers/transport";
import { segmentsForHost } from "../components/segment";
import {
  HostEntry,
  hostConnection,
  KeyRef,
  parseStackConfig,
  readLabInventory,
  StackConfig,
  underlayOf,
} from "./config";
import { planBatches } from "./rollout";

function rawConfig(): Record<string, unknown> {
  const cfg = new pulumi.Config("hostnet");
  const raw: Record<string, unknown> = {};
  for (const key of [
    "inventory",
    "hosts",
    "bridges",
    "simulatedNics",
    "vms",
    "rollout",
    "segments",
    "onlyHost",
  ]) {
    const v =
      key === "inventory" || key === "onlyHost"
        ? cfg.get(key)
        : cfg.getObject(key);
    if (v !== undefined) raw[key] = v;
  }
  return raw;
}

/**
 * Where the SSH key comes from: the stack config secret hostnet:privateKey, else the key file
 * hostnet:privateKeyFile on the runner, else (the lab) the lab inventory's key file. Resources store only this reference; the provider process reads the key.
 */
export function keySource(config: StackConfig): KeyRef {
  const cfg = new pulumi.Config("hostnet");
  if (cfg.getSecret("privateKey") !== undefined)
    return { privateKeyConfig: "hostnet:privateKey" };
  const file = cfg.get("privateKeyFile");
  if (file !== undefined) return { privateKeyFile: file };
  if (config.inventory === "lab")
    return { privateKeyFile: readLabInventory().privateKeyPath };
  throw new Error(
    'no SSH key configured: pulumi config set --secret hostnet:privateKey "$(cat ~/.ssh/id_ed25519)", ' +
      "or pulumi config set hostnet:privateKeyFile /absolute/path/of/the/key (a file on every runner)",
  );
}

function connectionFor(
  h: HostEntry,
  key: pulumi.Output<string> | KeyRef,
): pulumi.Input<ConnectionInput> {
  return pulumi.Output.isInstance(key)
    ? key.apply((privateKey) => hostConnection(h, privateKey))
    : hostConnection(h, key);
}

export async function program(): Promise<Record<string, unknown>> {
  const config = parseStackConfig(rawConfig());
  return deployFleet(config, keySource(config));
}

/**
 * The fleet for a validated config: batches of HostTopologies, each gated on the previous batch.
 * A host stack (config.onlyHost, made by the fleet runner) deploys that one host without a gate:
 * its health is a stack output and the runner applies the failure budget across the rollout.
 */
export function deployFleet(
  config: StackConfig,
  key: pulumi.Output<string> | KeyRef,
): Record<string, unknown> {
  const hostsWithWork = config.hosts.filter(
    (h) =>
      (config.onlyHost === undefined || h.name === config.onlyHost) &&
      (config.vms.some((v) => v.host === h.name) || config.bridges.length > 0),
  );
  const batches = planBatches(hostsWithWork, config.rollout.serial);
  const results: Array<{
    host: string;
    healthy: pulumi.Output<boolean>;
    problems: pulumi.Output<string[]>;
  }> = [];
  let gate: RolloutGate | undefined;
  const underlay = new Map(
    config.hosts.map((h) => [h.name, underlayOf(h)!] as const),
  );
  batches.forEach((batch, i) => {
    for (const h of batch) {
      const topo = new HostTopology(
        h.name,
        {
          hostName: h.name,
          connection: connectionFor(h, key),
          bridges: config.bridges,
          simulatedNics: config.simulatedNics,
          vms: config.vms.filter((v) => v.host === h.name),
          healthCheck: config.rollout.healthCheck,
          persist: h.persist,
          segments: segmentsForHost(
            h.name,
            config.segments ?? [],
            config.vms,
            underlay,
          ),
        },
        { dependsOn: gate ? [gate] : [] },
      );
      if (topo.health)
        results.push({
          host: h.name,
          healthy: topo.health.healthy,
          problems: topo.health.problems,
        });
    }
    if (config.rollout.healthCheck && config.onlyHost === undefined) {
      const verdicts = pulumi.all(
        results.map((r) =>
          pulumi.all([r.healthy, r.problems]).apply(([healthy, problems]) => ({
            host: r.host,
            healthy,
            problems,
          })),
        ),
      );
      gate = new RolloutGate(`rollout-batch-${i}`, {
        batch: i,
        maxFailures: config.rollout.maxFailures,
        results: verdicts,
      });
    }
  });
  return {
    batches: batches.map((b) => b.map((h) => h.name)),
    health: pulumi
      .all(
        results.map((r) =>
          pulumi
            .all([r.healthy, r.problems])
            .apply(
              ([healthy, problems]) => [r.host, { healthy, problems }] as const,
            ),
        ),
      )
      .apply(Object.fromEntries),
    vms: config.vms
      .filter(
        (v) => config.onlyHost === undefined || v.host === config.onlyHost,
      )
      .map((v) => ({
        name: v.name,
        ifname: vmKey(v),
        host: v.host,
        attachment: v.attachment,
        managedFdb: v.managedFdb,
        filter: v.filter,
        ipv4: v.ipv4,
      })),
  };
}

export default program;
