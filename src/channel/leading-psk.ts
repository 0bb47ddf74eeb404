// The SymmetricState of a psk0 handshake after InitializeSymmetric, MixHash(prologue) and its
// leading MixKeyAndHash(psk): one value per hash, protocol, prologue and psk, so it is kept.
import { timingSafeEqual } from 'node:crypto';
import { bytesEqual } from '../util/bytes.ts';
import type { NoiseHash } from './hashes.ts';
import { copyBytes } from './primitives.ts';
import type { SymmetricSnapshot } from './symmetric-state.ts';

/**
 * States kept (a node uses one network key, so one psk). Past it the oldest entry is dropped and
 * its bytes zeroed; a dropped state is computed again when next needed.
 */
export const LEADING_PSK_CACHE_SIZE = 8;

interface Entry {
  readonly hash: NoiseHash;
  readonly protocol: string;
  readonly prologue: Uint8Array;
  readonly psk: Uint8Array;
  readonly state: SymmetricSnapshot;
}

/*
 * Policy: these bytes (ck, h, k) are derived from the psk and public constants only, never from
 * anything ephemeral, and are exactly as secret as the psk, which the process holds anyway
 * (derivePsk's cache); every handshake still takes its own fresh e and does every DH. The hash
 * object is part of the key, so an instrumented hash (the operation-count test) has its own.
 */
const entries: Entry[] = [];

/** The kept state for these inputs (shared: the caller copies it, never writes it), or undefined. */
export function findLeadingPskState(hash: NoiseHash, protocol: string, prologue: Uint8Array, psk: Uint8Array): SymmetricSnapshot | undefined {
  for (const e of entries) {
    if (e.hash !== hash || e.protocol !== protocol || e.psk.length !== psk.length || !bytesEqual(e.prologue, prologue)) continue;
    if (timingSafeEqual(e.psk, psk)) return e.state;
  }
  return undefined;
}

/** Keeps `state` (a snapshot the caller no longer writes) for these inputs, copying the inputs. */
export function keepLeadingPskState(hash: NoiseHash, protocol: string, prologue: Uint8Array, psk: Uint8Array, state: SymmetricSnapshot): void {
  if (entries.length >= LEADING_PSK_CACHE_SIZE) {
    const old = entries.shift()!;
    for (const bytes of [old.psk, old.state.ck, old.state.h, old.state.k]) bytes?.fill(0);
  }
  entries.push({ hash, protocol, prologue: copyBytes(prologue), psk: copyBytes(psk), state });
}
