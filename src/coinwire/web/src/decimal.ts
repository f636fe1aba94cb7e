// Exact decimal arithmetic on the API's decimal strings (BigInt scaled by 10^scale), for order validation.

export interface Dec {
  units: bigint;
  scale: number;
}

const DEC = /^\s*(-)?(\d*)(?:\.(\d*))?\s*$/;

/** "0.0150" -> {units: 150n, scale: 4}; null when the text is not a plain decimal number. */
export function parse(text: string): Dec | null {
  const m = DEC.exec(text);
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) return null;
  const frac = m[3] ?? "";
  const units = BigInt((m[2] || "0") + frac) * (m[1] ? -1n : 1n);
  return { units, scale: frac.length };
}

function rescale(d: Dec, scale: number): bigint {
  return d.units * 10n ** BigInt(scale - d.scale);
}

export function cmp(a: Dec, b: Dec): number {
  const s = Math.max(a.scale, b.scale);
  const x = rescale(a, s), y = rescale(b, s);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function mul(a: Dec, b: Dec): Dec {
  return { units: a.units * b.units, scale: a.scale + b.scale };
}

/** Is `a` a whole multiple of `step`? */
export function isMultiple(a: Dec, step: Dec): boolean {
  const s = Math.max(a.scale, step.scale);
  const st = rescale(step, s);
  return st === 0n || rescale(a, s) % st === 0n;
}

/** The largest multiple of `step` not above `a` (a >= 0). */
export function floorTo(a: Dec, step: Dec): Dec {
  const s = Math.max(a.scale, step.scale);
  const st = rescale(step, s);
  const x = rescale(a, s);
  return { units: st === 0n ? x : (x / st) * st, scale: s };
}

/** a / b rounded down to `scale` decimals. */
export function divFloor(a: Dec, b: Dec, scale: number): Dec {
  if (b.units === 0n) return { units: 0n, scale };
  const num = a.units * 10n ** BigInt(scale + b.scale);
  const den = b.units * 10n ** BigInt(a.scale);
  return { units: num / den, scale };
}

export function decimalsOf(step: string): number {
  return parse(step)?.scale ?? 0;
}

export function toString(d: Dec): string {
  const neg = d.units < 0n;
  const digits = (neg ? -d.units : d.units).toString().padStart(d.scale + 1, "0");
  let out = d.scale ? `${digits.slice(0, -d.scale)}.${digits.slice(-d.scale)}` : digits;
  if (d.scale) out = out.replace(/\.?0+$/, "");
  return (neg && out !== "0" ? "-" : "") + out;
}
