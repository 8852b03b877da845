import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DIVE_DEFAULT_RULES,
  evaluateCi,
  mergeCiRules,
  parseCiConfig,
  parseCiValue,
} from '../../src/analysis/ci.js';
import { BallastError } from '../../src/errors.js';
import { del, file, run } from './synthetic.test.js';

// total 1500, final 1100, wasted 400, efficiency 0.7333, userWastedPercent 400/500 = 0.8
const report = () => run([[file('base', 1000)], [file('tmp', 400)], [del('tmp'), file('app', 100)]]).report;

function lineError(text: string, line: number, pattern: RegExp): void {
  assert.throws(
    () => parseCiConfig(text),
    (e: unknown) => {
      assert.ok(BallastError.is(e));
      assert.equal(e.exitCode, 2);
      assert.match(e.message, new RegExp(`^\\.dive-ci:${line}: `));
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('CI rules', () => {
  it('passes and fails each rule against the report, dive’s comparisons', () => {
    const r = report();
    assert.equal(r.wastedBytes, 400);
    assert.deepEqual(
      evaluateCi(r, {
        lowestEfficiency: 0.7,
        highestWastedBytes: 400,
        highestUserWastedPercent: 0.5,
        maxSize: 1000,
      }),
      [
        { rule: 'lowestEfficiency', limit: 0.7, actual: 1100 / 1500, pass: true },
        { rule: 'highestWastedBytes', limit: 400, actual: 400, pass: true },
        { rule: 'highestUserWastedPercent', limit: 0.5, actual: 0.8, pass: false },
        { rule: 'maxSize', limit: 1000, actual: 1500, pass: false },
      ],
    );
    const strict = evaluateCi(r, {
      lowestEfficiency: 0.9,
      highestWastedBytes: 399,
      highestUserWastedPercent: null,
    });
    assert.deepEqual(
      strict.map((x) => [x.rule, x.pass]),
      [
        ['lowestEfficiency', false],
        ['highestWastedBytes', false],
      ],
    );
    assert.deepEqual(evaluateCi(r, {}), []);
  });

  it('merges defaults, a config file and flags, later winning', () => {
    const merged = mergeCiRules(
      DIVE_DEFAULT_RULES,
      { lowestEfficiency: 0.5, highestUserWastedPercent: null },
      { maxSize: 10 },
    );
    assert.deepEqual(merged, {
      lowestEfficiency: 0.5,
      highestWastedBytes: null,
      highestUserWastedPercent: null,
      maxSize: 10,
    });
  });

  it('parses values: ratios, sizes, disabled', () => {
    assert.equal(parseCiValue('lowestEfficiency', '0.95'), 0.95);
    assert.equal(parseCiValue('highestWastedBytes', '20MB'), 20_000_000);
    assert.equal(parseCiValue('maxSize', '1.5GiB'), 1.5 * 1024 ** 3);
    assert.equal(parseCiValue('maxSize', '512'), 512);
    assert.equal(parseCiValue('highestUserWastedPercent', 'disabled'), null);
    assert.match(String(parseCiValue('lowestEfficiency', '95%')), /ratio between 0 and 1/);
    assert.match(String(parseCiValue('lowestEfficiency', '1.5')), /ratio between 0 and 1/);
    assert.match(String(parseCiValue('highestWastedBytes', 'lots')), /must be a size/);
  });
});

describe('.dive-ci parsing', () => {
  it('reads dive’s documented file', () => {
    const text = `rules:
  # If the efficiency is measured below X%, mark as failed.
  # Expressed as a ratio between 0-1.
  lowestEfficiency: 0.95

  # If the amount of wasted space is at least X or larger than X, mark as failed.
  # Expressed in B, KB, MB, and GB.
  highestWastedBytes: 20MB

  # Expressed as a ratio between 0-1; fails if the threshold is met or crossed.
  highestUserWastedPercent: 0.20
`;
    assert.deepEqual(parseCiConfig(text), {
      lowestEfficiency: 0.95,
      highestWastedBytes: 20_000_000,
      highestUserWastedPercent: 0.2,
    });
  });

  it('accepts quotes, disabled, trailing comments, CRLF, a document marker and maxSize', () => {
    const text =
      '---\r\nrules:\r\n    highestWastedBytes: "disabled"  # off\r\n    maxSize: \'1.5GB\'\r\n    lowestEfficiency: .9\r\n';
    assert.deepEqual(parseCiConfig(text), {
      highestWastedBytes: null,
      maxSize: 1_500_000_000,
      lowestEfficiency: 0.9,
    });
    assert.deepEqual(parseCiConfig('# nothing\n\n'), {});
    assert.deepEqual(parseCiConfig('rules:\n'), {});
  });

  it('rejects what it does not understand, naming the line', () => {
    lineError(
      'rules:\n  lowestEfficiency: 0.9\n  highestWastedByte: 20MB\n',
      3,
      /unknown rule "highestWastedByte"/,
    );
    lineError('# c\nrule:\n  lowestEfficiency: 0.9\n', 2, /unknown key "rule"/);
    lineError('rules:\n  lowestEfficiency: 0.9\n  lowestEfficiency: 0.8\n', 3, /duplicate rule/);
    lineError('rules:\n  lowestEfficiency: high\n', 2, /ratio between 0 and 1/);
    lineError('rules:\n  highestWastedBytes: 20 apples\n', 2, /must be a size/);
    lineError('rules:\n  lowestEfficiency:\n', 2, /has no value/);
    lineError('lowestEfficiency: 0.9\n', 1, /unknown key "lowestEfficiency"/);
    lineError('rules:\n  lowestEfficiency: 0.9\n    highestWastedBytes: 1\n', 3, /inconsistent indentation/);
    lineError('rules:\n\tlowestEfficiency: 0.9\n', 2, /tabs/);
    lineError('rules:\n  - lowestEfficiency\n', 2, /expected "key: value"/);
    lineError('rules:\n  maxSize: "20MB\n', 2, /unterminated quote/);
    lineError('rules: 1\n', 1, /indented keys/);
    lineError('rules:\nrules:\n', 2, /duplicate key "rules"/);
    lineError('  lowestEfficiency: 0.9\n', 1, /outside "rules:"/);
  });
});
