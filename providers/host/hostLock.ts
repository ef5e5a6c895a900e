// The host-side lock that serializes hostnet writers on one host. The holder keeps a channel open
// running `cat`; the lock (flock on fd 9) is released when that channel closes, i.e. when the
// deployment's provider process ends or loses its connection — never left behind by a crash.
import { shellQuote } from "../transport";

export const LOCK_READY = "HOSTNET-LOCKED";
const LOCK_DIR = "/run/hostnet";
const WAIT_SECONDS = 900;

export function hostLockScript(owner: string): string {
  const safeOwner = owner.replace(/[^A-Za-z0-9 _.:()@-]/g, "?").slice(0, 120);
  return [
    `mkdir -p ${LOCK_DIR}`,
    `exec 9>>${LOCK_DIR}/lock`,
    `if ! flock -n 9; then`,
    `  echo "BUSY $(cat ${LOCK_DIR}/lock.owner 2>/dev/null)"`,
    `  flock -w ${WAIT_SECONDS} 9 || { echo "hostnet lock on $(hostname) still held after ${WAIT_SECONDS}s by $(cat ${LOCK_DIR}/lock.owner 2>/dev/null)" >&2; exit 75; }`,
    `fi`,
    `printf '%s\\n' ${shellQuote(safeOwner)} > ${LOCK_DIR}/lock.owner`,
    `echo ${LOCK_READY}`,
    `exec cat >/dev/null`,
    "",
  ].join("\n");
}
