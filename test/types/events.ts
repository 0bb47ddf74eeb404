// Type tests, checked by `tsc` (npm test typechecks first): each `@ts-expect-error` line must
// fail to compile, so a misspelt event name or a wrong listener argument is caught.
import { Events, Identity, Model, type Change, type Header, type Progress, type Rejection, type Update } from '../../src/index.ts';
import type { ProtocolError } from '../../src/errors.ts';

const identity = Identity.generate();
const model = new Model({ identity });

model.on('invalid', (r) => {
  const reason: string = r.reason;
  const rejection: Rejection = r;
  void reason, void rejection;
});
model.on('change', (c) => {
  const change: Change = c;
  void change;
});
model.on('change:config/replicas', (value, update) => {
  const version: number = update.version;
  void value, void version;
});
model.once('equivocation', (e) => void e.updates[1].hashHex);
model.on('update', (u: Update, origin) => void [u.version, origin]);
// @ts-expect-error a misspelt event name does not compile
model.on('chnage', () => {});
// @ts-expect-error 'invalid' listeners get a Rejection, not a number
model.on('invalid', (r: number) => void r);
// @ts-expect-error 'change' carries a Change, not a string
model.on('change', (c: string) => void c);

const stream = model.createStream();
stream.on('header', (h) => {
  const header: Header = h;
  void header;
});
stream.on('cut', (e) => {
  const err: ProtocolError = e;
  void err.reason;
});
stream.on('progress', (p) => {
  const progress: Progress = p;
  void progress;
});
stream.on('data', (chunk: Buffer) => void chunk);
// @ts-expect-error a misspelt stream event does not compile (npm scuttlebutt spelt it 'syncRecieved')
stream.on('syncRecieved', () => {});
// @ts-expect-error 'header' listeners get a Header
stream.on('header', (h: number) => void h);

// Events: replicated names are free-form, its own events are typed
const events = new Events({ identity });
events.on('alert', (data: unknown, update: Update) => void [data, update]);
events.on('compaction', (removed: Update[]) => void removed);

// Secure channels: a Duplex's events, typed
declare const channel: import('../../src/index.ts').SecureChannel;
channel.on('close', () => {});
channel.on('error', (e: Error) => void e.message);
// @ts-expect-error a misspelt channel event does not compile
channel.on('closed', () => {});
