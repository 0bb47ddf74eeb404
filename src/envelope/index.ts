// envelope/: the signed update and signet's one CBOR codec.
export { parseUpdate, openUpdate, verifyUpdate, signUpdate, isDatasetName, UPDATE_FORMAT } from './update.ts';
export type { Update, UpdateReason, UpdateResult, UpdateOptions, UpdateFields } from './update.ts';
export { nextVersion, wallClockMicros } from './version.ts';
export { decodeCbor, encodeCbor, FORBIDDEN_KEYS, type Value, type CborResult } from './cbor.ts';
export { assertValue, SUPPORTED_VALUE_TYPES } from './value.ts';
