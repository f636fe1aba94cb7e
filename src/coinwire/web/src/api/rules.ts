// Rule sets over the wire: the REST routes under /api/v1/rulesets, and the firings of the rule sets on one portfolio.

import type { Http } from "./http";
import type { RuleFiring, RuleSet } from "./types";
import { firingMarks, listOf, onScope, type FiringMark } from "../rules";
import type { ScopeRef } from "../portfolio";

export const RULESETS = "/api/v1/rulesets";

/** The caller's rule sets (an admin's list may hold other users' too: the server decides). */
export async function listRuleSets(http: Http): Promise<RuleSet[]> {
  return listOf<RuleSet>(await http.get<unknown>(RULESETS), "rule_sets");
}

/** A rule set's firings, newest first as the server answers them. */
export async function ruleFirings(http: Http, id: number, limit = 100): Promise<RuleFiring[]> {
  return listOf<RuleFiring>(await http.get<unknown>(`${RULESETS}/${id}/firings`, { limit }), "firings");
}

/** Every firing of the caller's rule sets on the portfolio `ref` as chart marks (a rule set whose firings cannot be read is left out). */
export async function firingsOnScope(http: Http, ref: ScopeRef, owner?: number): Promise<FiringMark[]> {
  const sets = (await listRuleSets(http)).filter((rs) => onScope(rs, ref) && (owner === undefined || rs.owner_id === owner));
  const all = await Promise.all(sets.map(async (rs) => firingMarks(rs.name, await ruleFirings(http, rs.id).catch(() => []))));
  return all.flat().sort((a, b) => a.time - b.time);
}
