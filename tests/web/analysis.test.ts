// Unit tests of the analyser overlays' pure helpers (src/coinwire/web/src/analysis.ts), run by test_units.py under node:test.

import assert from "node:assert/strict";
import test from "node:test";
import * as A from "../../src/coinwire/web/src/analysis";

test("a portfolio's series is named as the analyser parses it, for every scope", () => {
  assert.equal(A.portfolioSeries({ scope: "user", id: "7" }, "1h"), "portfolio:user:7:1h");
  assert.equal(A.portfolioSeries({ scope: "wallet_set", id: "12" }, "15m"), "portfolio:wallet_set:12:15m");
  assert.equal(A.analysable("4h"), true);
  assert.equal(A.analysable("1w"), false); // weeks and months are not whole UTC roll-ups of 15 minutes the analyser makes
});

test("a choice asks for exactly the streams it shows; an SMA length out of range asks for none", () => {
  assert.deepEqual(A.overlaySpecs(A.NO_OVERLAYS), []);
  const all = A.overlaySpecs({ peak: true, drawdown: true, sma: 20 });
  assert.deepEqual(all.map((s) => [s.indicator, s.params, s.kind]), [["peak", [], "line"], ["sma", [20], "line"], ["drawdown", [], "figure"]]);
  assert.equal(all[1].label, "SMA 20");
  assert.deepEqual(A.overlaySpecs({ peak: false, drawdown: false, sma: 1 }), []);
  assert.deepEqual(A.overlaySpecs({ peak: false, drawdown: false, sma: 2.5 }), []);
  assert.deepEqual(A.overlaySpecs({ peak: false, drawdown: false, sma: 501 }), []);
});

test("a kept choice reads back; anything malformed is no overlay", () => {
  const c = { peak: true, drawdown: false, sma: 50 };
  assert.deepEqual(A.parseChoice(JSON.stringify(c)), c);
  assert.deepEqual(A.parseChoice(null), A.NO_OVERLAYS);
  assert.deepEqual(A.parseChoice("{not json"), A.NO_OVERLAYS);
  assert.deepEqual(A.parseChoice('{"peak":"yes","sma":0}'), A.NO_OVERLAYS);
});

test("stored values become points ascending by time, one per time, non-numbers dropped", () => {
  assert.deepEqual(A.toPoints([[300, 3], [100, "1.5"], [200, null], [100, 2], ["x", 4]]), [[100, 2], [300, 3]]);
});

test("a live value extends, replaces the newest, or is ignored when older", () => {
  const pts: A.Point[] = [[100, 1], [200, 2]];
  assert.equal(A.addPoint(pts, [300, 3]), true);
  assert.equal(A.addPoint(pts, [300, 4]), true);
  assert.equal(A.addPoint(pts, [150, 9]), false);
  assert.equal(A.addPoint(pts, [400, NaN]), false);
  assert.deepEqual(pts, [[100, 1], [200, 2], [300, 4]]);
});

test("the drawdown figure reads as a person says it", () => {
  assert.equal(A.drawdownText([]), "–");
  assert.equal(A.drawdownText([[1, 0]]), "at peak");
  assert.equal(A.drawdownText([[1, 0], [2, 3.256]]), "−3.26%");
});

test("a value timed at its bar's close is drawn on that bar's candle (its open)", () => {
  assert.equal(A.barOpen(3600, "15m"), 2700);
  assert.equal(A.barOpen(86_400 * 2, "1d"), 86_400);
  assert.equal(A.barOpen(14_400, "4h"), 0);
});
