// models/: the replicated data types.
export {
  Model, MAX_KEY_LENGTH, DEFAULT_TOMBSTONE_HORIZON_MS, MAX_KEPT_VERSIONS,
  type ModelOptions, type ModelEvents, type SetOptions, type Change,
} from './model.ts';
export {
  lastWriterWins, checkResolve, versionRecord, MAX_CHECKED_RECORDS, type ResolveFn, type VersionRecord,
} from './resolve.ts';
export { ResolveError } from '../errors.ts';
export {
  Events, DEFAULT_MAX_HISTORY, RESERVED_EVENT_NAMES, MAX_EVENT_NAME_LENGTH, MAX_EVENT_TTL_MS, PATTERN_SEPARATOR,
  type EventsOptions, type EventsEvents, type EmitOptions, type PatternListener,
} from './events.ts';
