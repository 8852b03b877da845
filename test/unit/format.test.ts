import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanSize, parseSize } from '../../src/util/size.js';
import { goTimeString, humanDuration } from '../../src/util/time.js';

test('sizes are written as docker writes them', () => {
  const cases: [number, string][] = [
    [0, '0B'],
    [7, '7B'],
    [745, '745B'],
    [8480, '8.48kB'],
    [63_200_000, '63.2MB'],
    [164_000_000, '164MB'],
    [1_290_000_000, '1.29GB'],
    [5_570_000, '5.57MB'],
    [1_000_000, '1MB'],
    [999_500, '1e+03kB'],
    [123_456_789, '123MB'],
  ];
  for (const [bytes, text] of cases) assert.equal(humanSize(bytes), text, String(bytes));
});

test('size limits parse decimal and binary units', () => {
  assert.equal(parseSize('20MB'), 20_000_000);
  assert.equal(parseSize('1.5GiB'), 1_610_612_736);
  assert.equal(parseSize('512'), 512);
  assert.equal(parseSize('10 kB'), 10_000);
  assert.equal(parseSize('lots'), undefined);
  assert.equal(parseSize('3XB'), undefined);
});

test('timestamps are written as Go writes a time.Time', () => {
  assert.equal(goTimeString('2020-09-25T22:33:52.495173292Z'), '2020-09-25T22:33:52.495173292Z');
  assert.equal(goTimeString('2020-09-25T22:33:52.500000Z'), '2020-09-25T22:33:52.5Z');
  assert.equal(goTimeString('2020-09-25T22:33:52.000Z'), '2020-09-25T22:33:52Z');
  assert.equal(goTimeString('2020-09-25T22:33:52+00:00'), '2020-09-25T22:33:52Z');
  assert.equal(goTimeString('2020-09-25T22:33:52+02:00'), '2020-09-25T22:33:52+02:00');
  assert.equal(goTimeString('yesterday'), undefined);
});

test('durations read as docker prints CREATED', () => {
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(45_000), '45 seconds');
  assert.equal(humanDuration(90_000), 'About a minute');
  assert.equal(humanDuration(6 * 60_000), '6 minutes');
  assert.equal(humanDuration(3 * 3_600_000), '3 hours');
  assert.equal(humanDuration(3 * 86_400_000), '3 days');
  assert.equal(humanDuration(20 * 86_400_000), '2 weeks');
  assert.equal(humanDuration(90 * 86_400_000), '3 months');
  assert.equal(humanDuration(800 * 86_400_000), '2 years');
});
