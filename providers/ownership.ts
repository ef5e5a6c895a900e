// How hostnet recognises what it made. Interfaces it creates carry this alias (IFLA_IFALIAS);
// a namespace it creates carries it on its loopback. Objects without it were found, not made.
export const OWNER_ALIAS = "hostnet";

/** Kernel answers that mean "already gone": deletes tolerate these. */
export function isGone(err: unknown): boolean {
  return /Cannot find device|No such file or directory|No such device|does not exist|Cannot open network namespace|No such process|Object not found/i.test(
    String(err),
  );
}
