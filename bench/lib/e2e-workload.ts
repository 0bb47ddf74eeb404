// The workload bench/e2e.ts measures, shared by the parent and its child roles (no side effects).

/** Messages from the parent. */
export type Command =
  | { cmd: 'start'; networkKey: string; seed?: string; replicaOf?: string; expect: number; port?: number; key?: string }
  | { cmd: 'write'; n: number; from: number; blocksPerAppend?: number }
  | { cmd: 'ceilings'; n: number }
  | { cmd: 'usage' }
  | { cmd: 'stop' };

/** 12-character keys and 100-byte values: 112 bytes of key and value per update. */
export const keyOf = (i: number): string => `key-${String(i).padStart(8, '0')}`;
export const VALUE = 'v'.repeat(100);
export const KEY_AND_VALUE = keyOf(0).length + VALUE.length;
