// Addresses as the mesh reads them: host:port and pinned seeds accepted and refused (IPv6
// brackets, port range and spelling, hostile hosts, the length limit at limit and limit+1),
// the canonical form of a remote IP (IPv4-mapped IPv6 becomes IPv4), and formatting round trips.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canonicalIp, formatHostPort, isWildcardHost, MAX_ADDRESS_LENGTH, parseHostPort, parseSeed } from '../../src/util/address.ts';
import { Identity } from '../../src/identity/identity.ts';

const ID = Identity.generate().id;

/** Asserts that `fn` throws `type` with `name` in its message. */
function refuses(fn: () => unknown, type: ErrorConstructor, name: string, what: string): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, type, `${what}: expected ${type.name}, got ${(error as Error).name}`);
    assert.ok((error as Error).message.includes(`"${name}"`), `${what}: message names the argument: ${(error as Error).message}`);
    return;
  }
  assert.unreachable(`${what}: accepted`);
}

// ---- parseHostPort -------------------------------------------------------------------------------

test('parseHostPort accepts names, IPv4 and bracketed IPv6 (brackets removed, zone kept)', () => {
  assert.equal(parseHostPort('example.com:7420', 'a'), { host: 'example.com', port: 7420 });
  assert.equal(parseHostPort('localhost:1', 'a'), { host: 'localhost', port: 1 });
  assert.equal(parseHostPort('my_host-2.local:80', 'a'), { host: 'my_host-2.local', port: 80 });
  assert.equal(parseHostPort('127.0.0.1:65535', 'a'), { host: '127.0.0.1', port: 65535 });
  assert.equal(parseHostPort('[::1]:7420', 'a'), { host: '::1', port: 7420 });
  assert.equal(parseHostPort('[2001:db8::1]:443', 'a'), { host: '2001:db8::1', port: 443 });
  assert.equal(parseHostPort('[::ffff:10.0.0.1]:9', 'a'), { host: '::ffff:10.0.0.1', port: 9 });
  assert.equal(parseHostPort('[fe80::1%eth0]:80', 'a'), { host: 'fe80::1%eth0', port: 80 });
});

test('port 0 only with allowZero; 65535 is the last port, 65536 refused either way', () => {
  refuses(() => parseHostPort('127.0.0.1:0', 'seed'), RangeError, 'seed', 'port 0 for a dial');
  refuses(() => parseHostPort('[::1]:0', 'seed'), RangeError, 'seed', 'port 0 for a dial, IPv6');
  assert.equal(parseHostPort('127.0.0.1:0', 'listen', true), { host: '127.0.0.1', port: 0 });
  assert.equal(parseHostPort('[::]:0', 'listen', true), { host: '::', port: 0 });
  assert.equal(parseHostPort('h:65535', 'a', true), { host: 'h', port: 65535 });
  refuses(() => parseHostPort('h:65536', 'a'), RangeError, 'a', '65536');
  refuses(() => parseHostPort('h:65536', 'a', true), RangeError, 'a', '65536 with allowZero');
  refuses(() => parseHostPort('h:99999', 'a'), RangeError, 'a', '99999');
  refuses(() => parseHostPort('h:100000', 'a'), RangeError, 'a', 'six digits');
});

test('a port has one spelling: no sign, no leading zero, no non-ASCII digit, no exponent', () => {
  for (const port of ['080', '00', '00000', '07420', '+80', '-1', '8_0', '8e1', '0x50', ' 80', '80 ', '٣', '８０', '80.0', '']) {
    refuses(() => parseHostPort(`h:${port}`, 'a', true), RangeError, 'a', `port ${JSON.stringify(port)}`);
  }
});

test('IPv6 must be bracketed, and brackets must hold IPv6', () => {
  refuses(() => parseHostPort('::1:7420', 'a'), RangeError, 'a', 'bare IPv6');
  refuses(() => parseHostPort('a:b:80', 'a'), RangeError, 'a', 'two colons');
  refuses(() => parseHostPort('[::1]', 'a'), RangeError, 'a', 'bracketed without port');
  refuses(() => parseHostPort('[::1]7420', 'a'), RangeError, 'a', 'no colon after the bracket');
  refuses(() => parseHostPort('[127.0.0.1]:80', 'a'), RangeError, 'a', 'IPv4 in brackets');
  refuses(() => parseHostPort('[example.com]:80', 'a'), RangeError, 'a', 'name in brackets');
  refuses(() => parseHostPort('[]:80', 'a'), RangeError, 'a', 'empty brackets');
  refuses(() => parseHostPort('[[::1]]:80', 'a'), RangeError, 'a', 'double brackets');
  refuses(() => parseHostPort('[::1:80', 'a'), RangeError, 'a', 'unclosed bracket');
  refuses(() => parseHostPort('[abc:80', 'a'), RangeError, 'a', 'opening bracket in a name');
  refuses(() => parseHostPort('abc]:80', 'a'), RangeError, 'a', 'closing bracket in a name');
});

/** Hosts no one should dial or print: control characters (a terminal escape in `signet
 *  members`), URL syntax, spaces, quotes, non-ASCII look-alikes, empty labels. */
const HOSTILE_HOSTS = [
  '', ' ', 'a b', 'a\tb', 'a\nb', 'a\u0000b', '\u001b[2J', 'x\u001b]0;pwned\u0007', 'a\u007fb', 'a/b', 'a#b', 'a@b', 'a?b',
  'a%b', 'a\\b', "a'b", 'a"b', 'a<b>', 'a;b', 'a,b', 'évil', '\u200bhost', 'host\u200b', 'ｈｏｓｔ', 'a..b', '.a', 'a.', '.',
  'x'.repeat(64), `${'a.'.repeat(127)}ab`,
];

test('hostile hosts are refused, each with a RangeError naming the argument', () => {
  for (const host of HOSTILE_HOSTS) refuses(() => parseHostPort(`${host}:7420`, 'advertise[0]'), RangeError, 'advertise[0]', `host ${JSON.stringify(host)}`);
});

test('a host label of 63 characters and a name of 253 are accepted; 64 and 254 are not', () => {
  assert.is(parseHostPort(`${'x'.repeat(63)}:1`, 'a').host.length, 63);
  const name253 = `${'a.'.repeat(126)}a`;
  assert.is(name253.length, 253);
  assert.is(parseHostPort(`${name253}:1`, 'a').host, name253);
  refuses(() => parseHostPort(`${'x'.repeat(64)}:1`, 'a'), RangeError, 'a', '64-character label');
  refuses(() => parseHostPort(`${name253}b:1`, 'a'), RangeError, 'a', '254-character name');
});

test('non-strings are a TypeError naming the argument', () => {
  for (const value of [undefined, null, 7420, true, {}, ['127.0.0.1:1'], Symbol('x'), () => 'h:1', new String('h:1')]) {
    refuses(() => parseHostPort(value, 'listen'), TypeError, 'listen', `value ${typeof value}`);
    refuses(() => parseSeed(value, 'seeds[0]'), TypeError, 'seeds[0]', `seed ${typeof value}`);
  }
});

test(`MAX_ADDRESS_LENGTH (${MAX_ADDRESS_LENGTH}): accepted at the limit (an IPv6 host with a zone id), refused at limit + 1`, () => {
  const host = (extra: number): string => `fe80::1%${'e'.repeat(MAX_ADDRESS_LENGTH - '[fe80::1%]:7420'.length + extra)}`;
  const atLimit = `[${host(0)}]:7420`;
  assert.is(atLimit.length, MAX_ADDRESS_LENGTH);
  assert.equal(parseHostPort(atLimit, 'a'), { host: host(0), port: 7420 });
  const over = `[${host(1)}]:7420`;
  assert.is(over.length, MAX_ADDRESS_LENGTH + 1);
  refuses(() => parseHostPort(over, 'a'), RangeError, 'a', 'limit + 1');
  refuses(() => parseHostPort(`${'a'.repeat(10_000_000)}:1`, 'a'), RangeError, 'a', 'ten million characters');
  refuses(() => parseHostPort('', 'a'), RangeError, 'a', 'empty');
  refuses(() => parseHostPort(':7420', 'a'), RangeError, 'a', 'no host');
  refuses(() => parseHostPort('7420', 'a'), RangeError, 'a', 'no colon');
  refuses(() => parseHostPort('h:', 'a'), RangeError, 'a', 'no port');
});

test('a refusal message quotes at most the limit of the input (no megabytes in an error)', () => {
  try {
    parseSeed(`${'a'.repeat(1_000_000)}:1#${'b'.repeat(1_000_000)}`, 's');
    assert.unreachable('accepted');
  } catch (error) {
    assert.ok((error as Error).message.length < 1000, `message of ${(error as Error).message.length} characters`);
  }
});

// ---- parseSeed -----------------------------------------------------------------------------------

test('parseSeed: unpinned and pinned seeds', () => {
  assert.equal(parseSeed('10.0.0.1:7420', 's'), { host: '10.0.0.1', port: 7420, id: undefined });
  assert.equal(parseSeed(`10.0.0.1:7420#${ID}`, 's'), { host: '10.0.0.1', port: 7420, id: ID });
  assert.equal(parseSeed(`[::1]:7420#${ID}`, 's'), { host: '::1', port: 7420, id: ID });
  // The length limit applies to the address; the pin adds its 53 characters on top.
  const address = `[fe80::1%${'e'.repeat(MAX_ADDRESS_LENGTH - '[fe80::1%]:7420'.length)}]:7420`;
  assert.is(parseSeed(`${address}#${ID}`, 's').id, ID);
});

test('parseSeed refuses pins that are not node ids, and a seed with port 0', () => {
  const bad = [
    '', ID.slice(0, -1), `${ID}a`, ID.toUpperCase(), `${ID.slice(0, -1)}b`, // wrong last character (non-canonical)
    `${ID.slice(0, -1)}1`, ` ${ID}`, `${ID} `, `${ID}#${ID}`, `${ID.slice(0, 10)}\u0000${ID.slice(11)}`,
  ];
  for (const pin of bad) refuses(() => parseSeed(`10.0.0.1:7420#${pin}`, 'seeds[2]'), RangeError, 'seeds[2]', `pin ${JSON.stringify(pin)}`);
  refuses(() => parseSeed(`#${ID}`, 's'), RangeError, 's', 'only a pin');
  refuses(() => parseSeed(`10.0.0.1:0#${ID}`, 's'), RangeError, 's', 'port 0');
  refuses(() => parseSeed('10.0.0.1:0', 's'), RangeError, 's', 'port 0 unpinned');
  refuses(() => parseSeed(`\u001b[2J:1#${ID}`, 's'), RangeError, 's', 'hostile host with a valid pin');
});

// ---- canonicalIp ---------------------------------------------------------------------------------

test('canonicalIp: every spelling of an IPv4-mapped IPv6 address is the IPv4 address', () => {
  const cases: [string, string][] = [
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['0:0:0:0:0:ffff:1.2.3.4', '1.2.3.4'],
    ['0000:0000:0000:0000:0000:FFFF:1.2.3.4', '1.2.3.4'],
    ['0::ffff:192.0.2.1', '192.0.2.1'],
    ['::0:ffff:192.0.2.1', '192.0.2.1'],
    ['::ffff:7f00:1', '127.0.0.1'],
    ['::ffff:c000:201', '192.0.2.1'],
    ['0:0:0:0:0:ffff:ffff:ffff', '255.255.255.255'],
    ['::ffff:0:0', '0.0.0.0'],
  ];
  for (const [input, expected] of cases) assert.is(canonicalIp(input), expected, input);
});

test('canonicalIp leaves IPv4 and real IPv6 alone (IPv6 lower-cased)', () => {
  const cases: [string, string][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['::1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['::ffff:0:1.2.3.4', '::ffff:0:1.2.3.4'], // IPv4-translated, not mapped
    ['64:ff9b::1.2.3.4', '64:ff9b::1.2.3.4'], // NAT64, not mapped
    ['::1.2.3.4', '::1.2.3.4'], // IPv4-compatible (deprecated), not mapped
    ['1::ffff:1.2.3.4', '1::ffff:1.2.3.4'],
    ['0:0:0:0:0:0:ffff:1', '0:0:0:0:0:0:ffff:1'], // ffff in the 7th group: not mapped
    ['ffff::1', 'ffff::1'],
    ['::ffff:1.2.3.400', '::ffff:1.2.3.400'], // not an address: left as is, never mapped
    [':::ffff:1.2.3.4', ':::ffff:1.2.3.4'],
  ];
  for (const [input, expected] of cases) assert.is(canonicalIp(input), expected, input);
});

test('canonicalIp: a mapped address and its IPv4 address count as one host', () => {
  const forms = ['192.0.2.7', '::ffff:192.0.2.7', '::FFFF:192.0.2.7', '0:0:0:0:0:ffff:192.0.2.7', '::ffff:c000:207'];
  assert.equal(new Set(forms.map(canonicalIp)), new Set(['192.0.2.7']));
});

// ---- formatHostPort and wildcards ----------------------------------------------------------------

test('formatHostPort brackets IPv6 only, and round-trips through parseHostPort', () => {
  assert.is(formatHostPort('::1', 7420), '[::1]:7420');
  assert.is(formatHostPort('127.0.0.1', 7420), '127.0.0.1:7420');
  assert.is(formatHostPort('example.com', 1), 'example.com:1');
  const inputs = ['127.0.0.1:1', '[::1]:7420', '[2001:db8::1]:65535', 'example.com:80', '[fe80::1%eth0]:9', '[::ffff:1.2.3.4]:2'];
  for (const text of inputs) {
    const { host, port } = parseHostPort(text, 'a');
    assert.is(formatHostPort(host, port), text);
    assert.equal(parseHostPort(formatHostPort(host, port), 'a'), { host, port });
  }
  assert.is(formatHostPort('0.0.0.0', 0), '0.0.0.0:0');
  assert.equal(parseHostPort(formatHostPort('::', 0), 'listen', true), { host: '::', port: 0 });
});

test('isWildcardHost: 0.0.0.0 and every spelling of ::, nothing else', () => {
  for (const host of ['0.0.0.0', '::', '0:0:0:0:0:0:0:0', '::0', '0::0', '0000::']) assert.ok(isWildcardHost(host), host);
  for (const host of ['127.0.0.1', '::1', '0.0.0.1', 'localhost', '', '0', '00', ':::', '::ffff:0.0.0.0']) assert.not.ok(isWildcardHost(host), host);
});

test.run();
