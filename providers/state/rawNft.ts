// Raw zod models of `nft -j list ruleset`: loose, so objects of newer nft versions still parse.
import { z } from "zod";

const nftNamed = {
  family: z.string(),
  table: z.string(),
  name: z.string(),
  handle: z.number().int().optional(),
};
const NftType = z.union([z.string(), z.array(z.string())]);

export const NftTable = z.looseObject({
  family: z.string(),
  name: z.string(),
  handle: z.number().int().optional(),
});
export const NftChain = z.looseObject({
  ...nftNamed,
  type: z.string().optional(),
  hook: z.string().optional(),
  prio: z.number().optional(),
  policy: z.string().optional(),
});
export const NftRule = z.looseObject({
  family: z.string(),
  table: z.string(),
  chain: z.string(),
  handle: z.number().int().optional(),
  expr: z.array(z.unknown()),
  comment: z.string().optional(),
});
export const NftSet = z.looseObject({
  ...nftNamed,
  type: NftType,
  map: NftType.optional(),
  flags: z.array(z.string()).optional(),
  elem: z.array(z.unknown()).optional(),
});
export const NftElement = z.looseObject({
  family: z.string(),
  table: z.string(),
  name: z.string(),
  elem: z.array(z.unknown()),
});
export const NftMetainfo = z.looseObject({
  version: z.string().optional(),
  json_schema_version: z.number().optional(),
});

/** One item of the `nftables` array: an object with exactly one of these keys (or another). */
export const NftItem = z.looseObject({
  metainfo: NftMetainfo.optional(),
  table: NftTable.optional(),
  chain: NftChain.optional(),
  rule: NftRule.optional(),
  set: NftSet.optional(),
  map: NftSet.optional(),
  element: NftElement.optional(),
});
export type NftItem = z.infer<typeof NftItem>;

export const NftRuleset = z.looseObject({ nftables: z.array(NftItem) });
export type NftRuleset = z.infer<typeof NftRuleset>;
