// `npm run backend -- up|down|url|status [--purge]`: a throwaway PostgreSQL cluster owned by the
// project, as the shared state backend of the Pulumi engine (its postgres:// DIY backend keeps all
// state in one table, pulumi_state). The cluster lives in .hostnet/backend (HOSTNET_BACKEND_DIR
// overrides it, e.g. for a test's own cluster), listens on a Unix socket there and on 127.0.0.1 at
// a free port, and has one role `hostnet` with a generated password (scram-sha-256). PostgreSQL's
// server refuses to run as root, so as root the cluster runs as the `postgres` user (or `nobody`).
// Debian's `postgresql` package is installed by `up` only when no server binaries are found.
// It never runs `pulumi login`: it prints the PULUMI_BACKEND_URL to put in the environment.
import { execFileSync, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { PROJECT_ROOT } from "./engine";

export interface BackendInfo {
  dir: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Unix user the server runs as. */
  runAs: string;
}

const ROLE = "hostnet";
const DATABASE = "pulumi";

export function backendDir(): string {
  return path.resolve(
    process.env.HOSTNET_BACKEND_DIR ??
      path.join(PROJECT_ROOT, ".hostnet", "backend"),
  );
}

const infoFile = (dir: string) => path.join(dir, "backend.json");

/** The server binaries: Debian's newest /usr/lib/postgresql/N/bin, else initdb on PATH. */
export function findPgBin(): string | undefined {
  const base = "/usr/lib/postgresql";
  const versions = fs.existsSync(base)
    ? fs
        .readdirSync(base)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const v of versions)
    if (fs.existsSync(path.join(base, v, "bin", "initdb")))
      return path.join(base, v, "bin");
  const which = spawnSync("sh", ["-c", "command -v initdb"], {
    encoding: "utf8",
  });
  return which.status === 0 && which.stdout.trim()
    ? path.dirname(fs.realpathSync(which.stdout.trim()))
    : undefined;
}

function installPostgres(): string {
  console.log(
    "backend: PostgreSQL server binaries not found; installing Debian's postgresql package (apt-get install postgresql)",
  );
  const apt = (args: string[]) =>
    execFileSync("apt-get", args, {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  try {
    apt(["install", "-y", "--no-install-recommends", "postgresql"]);
  } catch {
    apt(["update"]);
    apt(["install", "-y", "--no-install-recommends", "postgresql"]);
  }
  const bin = findPgBin();
  if (!bin)
    throw new Error(
      "backend: apt-get installed postgresql but no initdb was found under /usr/lib/postgresql/*/bin",
    );
  return bin;
}

function serverUser(): string {
  if (process.getuid?.() !== 0) return "";
  for (const u of ["postgres", "nobody"])
    if (spawnSync("id", ["-u", u]).status === 0) return u;
  throw new Error(
    "backend: running as root and there is no 'postgres' or 'nobody' user to run the PostgreSQL server as (it refuses root)",
  );
}

/** Run a server binary, as the server user when we are root. */
function pg(
  bin: string,
  tool: string,
  args: string[],
  runAs: string,
  opts: { env?: NodeJS.ProcessEnv } = {},
): string {
  const argv = runAs
    ? ["runuser", "-u", runAs, "--", path.join(bin, tool), ...args]
    : [path.join(bin, tool), ...args];
  const r = spawnSync(argv[0], argv.slice(1), {
    encoding: "utf8",
    cwd: "/",
    env: { ...process.env, ...opts.env },
  });
  if (r.status !== 0)
    throw new Error(
      `backend: ${tool} ${args.join(" ")} failed (exit ${r.status}):\n${(r.stderr || r.stdout || String(r.error)).trim()}`,
    );
  return r.stdout;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function readBackend(dir = backendDir()): BackendInfo | undefined {
  return fs.existsSync(infoFile(dir))
    ? JSON.parse(fs.readFileSync(infoFile(dir), "utf8"))
    : undefined;
}

export function backendUrl(info: BackendInfo): string {
  return `postgres://${info.user}:${encodeURIComponent(info.password)}@127.0.0.1:${info.port}/${info.database}?sslmode=disable`;
}

export function isRunning(info: BackendInfo | undefined): boolean {
  const bin = findPgBin();
  if (
    !info ||
    !bin ||
    !fs.existsSync(path.join(info.dir, "data", "PG_VERSION"))
  )
    return false;
  try {
    pg(
      bin,
      "pg_ctl",
      ["status", "-D", path.join(info.dir, "data")],
      info.runAs,
    );
    return true;
  } catch {
    return false; // exit 3: no server running
  }
}

/**
 * The server user must be able to walk down to the cluster directory. Inside the project, add
 * search permission (x for group and others, nothing else) where it is missing; outside it, change
 * nothing and say which directory is in the way.
 */
function searchableByServer(dir: string): void {
  const project = path.resolve(PROJECT_ROOT);
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const mode = fs.statSync(d).mode & 0o7777;
    if ((mode & 0o011) !== 0o011) {
      if (d !== project && !d.startsWith(project + path.sep)) {
        throw new Error(
          `the PostgreSQL server runs as another user and cannot enter ${d} (mode ${mode.toString(8)}); nothing was started. ` +
            `Set HOSTNET_BACKEND_DIR to a directory it can reach (e.g. under /var/lib), or allow search on ${d} (chmod o+x).`,
        );
      }
      fs.chmodSync(d, mode | 0o011);
    }
    if (path.dirname(d) === d) return;
  }
}

/** Start the cluster (creating it on first use); returns its details. Idempotent. */
export async function backendUp(dir = backendDir()): Promise<BackendInfo> {
  const bin = findPgBin() ?? installPostgres();
  let info = readBackend(dir);
  if (info && isRunning(info)) return info;
  const runAs = info?.runAs ?? serverUser();
  const data = path.join(dir, "data");
  const sock = path.join(dir, "run");
  // The server runs as another user: every directory down to the cluster's must be searchable by
  // it, so parents are made 0755 (a recursive mkdir with 0700 would lock it out of its own data).
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  searchableByServer(dir);
  fs.mkdirSync(sock, { recursive: true, mode: 0o700 });
  if (!info || !fs.existsSync(path.join(data, "PG_VERSION"))) {
    fs.rmSync(data, { recursive: true, force: true });
    fs.mkdirSync(data, { recursive: true, mode: 0o700 });
    info = {
      dir,
      port: 0,
      user: ROLE,
      password: crypto.randomBytes(18).toString("base64url"),
      database: DATABASE,
      runAs,
    };
    const pwfile = path.join(dir, "pwfile");
    fs.writeFileSync(pwfile, `${info.password}\n`, { mode: 0o600 });
    if (runAs) execFileSync("chown", ["-R", `${runAs}:`, dir]);
    try {
      pg(
        bin,
        "initdb",
        [
          "-D",
          data,
          "-U",
          ROLE,
          "--auth=scram-sha-256",
          `--pwfile=${pwfile}`,
          "-E",
          "UTF8",
          "--no-instructions",
        ],
        runAs,
      );
    } finally {
      fs.rmSync(pwfile, { force: true });
    }
  }
  info.port = await freePort();
  fs.writeFileSync(infoFile(dir), JSON.stringify(info, null, 2), {
    mode: 0o600,
  });
  const options = `-k ${sock} -p ${info.port} -c listen_addresses=127.0.0.1`;
  pg(
    bin,
    "pg_ctl",
    [
      "start",
      "-w",
      "-t",
      "60",
      "-D",
      data,
      "-l",
      path.join(dir, "server.log"),
      "-o",
      options,
    ],
    runAs,
  );
  const env = { PGPASSWORD: info.password };
  const exists = pg(
    bin,
    "psql",
    [
      "-h",
      "127.0.0.1",
      "-p",
      String(info.port),
      "-U",
      ROLE,
      "-d",
      "postgres",
      "-tAc",
      `SELECT 1 FROM pg_database WHERE datname = '${DATABASE}'`,
    ],
    "",
    { env },
  ).trim();
  if (exists !== "1")
    pg(
      bin,
      "createdb",
      ["-h", "127.0.0.1", "-p", String(info.port), "-U", ROLE, DATABASE],
      "",
      { env },
    );
  return info;
}

/** Stop the cluster; with purge, remove it and its state too. */
export function backendDown(dir = backendDir(), purge = false): void {
  const info = readBackend(dir);
  const bin = findPgBin();
  if (info && bin && isRunning(info))
    pg(
      bin,
      "pg_ctl",
      ["stop", "-w", "-m", "fast", "-D", path.join(info.dir, "data")],
      info.runAs,
    );
  if (purge) fs.rmSync(dir, { recursive: true, force: true });
}

async function main(argv: string[]): Promise<number> {
  const [cmd] = argv;
  const dir = backendDir();
  switch (cmd) {
    case "up": {
      const info = await backendUp(dir);
      console.log(
        `backend: PostgreSQL running in ${dir} (127.0.0.1:${info.port}, socket ${path.join(dir, "run")}, server user ${info.runAs || "(you)"})`,
      );
      console.log(`PULUMI_BACKEND_URL=${backendUrl(info)}`);
      return 0;
    }
    case "url": {
      const info = readBackend(dir);
      if (!info) {
        console.error(
          `backend: no cluster in ${dir}: run 'npm run backend -- up'`,
        );
        return 1;
      }
      console.log(`PULUMI_BACKEND_URL=${backendUrl(info)}`);
      return isRunning(info) ? 0 : 1;
    }
    case "status": {
      const info = readBackend(dir);
      const up = isRunning(info);
      console.log(
        info
          ? `backend: ${up ? "running" : "stopped"} (${dir}, 127.0.0.1:${info.port})`
          : `backend: none in ${dir}`,
      );
      return up ? 0 : 3;
    }
    case "down":
      backendDown(dir, argv.includes("--purge"));
      console.log(
        `backend: stopped${argv.includes("--purge") ? " and removed" : ""} (${dir})`,
      );
      return 0;
    default:
      console.error(
        "usage: npm run backend -- up | down [--purge] | url | status",
      );
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
