// Positions: every open perpetual position of the shown account, live, with its controls, and the funding history.

import type { App } from "../app";
import { accountScope } from "../ui/account_switcher";
import { Disposer, h } from "../ui/dom";
import { fundingPanel, livePositions, positionsPanel } from "../ui/positions";

export function positionsPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const live = livePositions(app, d);
  return h("div", { class: "page positions" },
    h("div", { class: "toolbar" }, accountScope(app)),
    positionsPanel(app, d, live),
    fundingPanel(app, d));
}
