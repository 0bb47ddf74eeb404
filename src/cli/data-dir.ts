// The daemon's data directory as a trust boundary: it holds the store and the control socket,
// so, as ssh does for ~/.ssh, it is refused when anyone but its owner could write in it.
import { statSync } from 'node:fs';
import { shown } from './control-protocol.ts';
import { CliError } from './io.ts';

/**
 * Refuses a data directory that group or other may write, or that another user (not root) owns
 * (root itself may use anyone's):
 * whoever can write there can replace the control socket and read every value sent to the node.
 * A directory that does not exist yet passes (the store creates it with mode 0700).
 * @throws CliError ERR_DATA_DIR_PERMISSIONS naming the path and the fix; ERR_DATA_DIR if the
 *   path exists and is not a directory.
 */
export function checkDataDir(path: string): void {
  let stats;
  try {
    stats = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new CliError('ERR_DATA_DIR', `data directory ${shown(path)} cannot be read: ${(err as Error).message}`);
  }
  if (!stats.isDirectory()) throw new CliError('ERR_DATA_DIR', `data directory ${shown(path)} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && stats.uid !== uid && stats.uid !== 0) {
    throw new CliError('ERR_DATA_DIR_PERMISSIONS', `data directory ${shown(path)} belongs to user ${stats.uid}, not to you (${uid}): use a directory of your own`);
  }
  if ((stats.mode & 0o022) !== 0) {
    const mode = (stats.mode & 0o777).toString(8).padStart(3, '0');
    throw new CliError(
      'ERR_DATA_DIR_PERMISSIONS',
      `data directory ${shown(path)} is writable by ${stats.mode & 0o002 ? 'everyone' : 'its group'} (mode ${mode}): anyone who can write there can replace the control socket. Fix it with: chmod go-w ${shown(path)}`,
    );
  }
}
