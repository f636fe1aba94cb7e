// Shapes of the public API's answers that the dashboard reads (decimal strings stay strings).

export interface Market {
  exchange: string;
  symbol: string;
  base: string;
  quote: string;
  tick: string;
  step: string;
  min_size: string;
  max_size: string | null;
  min_notional: string;
  maker_fee: string;
  taker_fee: string;
  // perpetuals (docs/DERIVATIVES.md): absent on a spot market
  kind?: "spot" | "perpetual";
  settle?: string;
  contract_size?: string;
  max_leverage?: number | null;
  funding_interval_s?: number | null;
}

export interface Exchange {
  exchange: string;
  status: string;
  mode: string;
  pairs: string[];
  symbols: string[];
  currencies: string[];
  markets: Market[];
}

/** An account (`GET /api/v1/accounts`): one user's funds on one exchange; `role` is what the caller is to it. */
export interface Account {
  id: number;
  exchange: string;
  kind: string; // paper | live
  name: string;
  owner: number | null;
  created_at: number;
  active: boolean;
  role: "owner" | "admin" | "trade" | "view";
}

export interface Order {
  id: number;
  account?: number;
  created_at: string;
  wallet_set_id: number | null;
  exchange: string;
  client_order_id: string;
  run_id: string | null;
  type: string;
  pair: string;
  symbol: string;
  size: string;
  side: "buy" | "sell";
  limit: string;
  status: string;
  done_reason: string | null;
  done_at: string | null;
  filled_size: string;
  avg_price: string;
  fee: string;
  fee_currency: string;
  // conditional orders (docs/ORDERS.md): absent or null on a plain order
  stop_price?: string | null; // the trigger level; a trailing stop's current one (null before it activates)
  trigger?: string | null; // last | mark | bid_ask
  trailing_delta?: string | null; // "1.5%" or a price distance
  activation_price?: string | null;
  time_in_force?: string;
  expire_at?: string | null;
  triggered_at?: string | null;
  oco_id?: number | null; // an OCO's legs share it
  parent_id?: number | null; // a bracket's child: its parent
  emulated?: boolean;
  reduce_only?: boolean;
  position_side?: PositionSide;
  bracket?: Bracket | null; // a bracket parent: the children it places (as an OCO) once it has filled
}

/** One child a bracket parent places once filled: its type, trigger level and limit (null: not its kind). */
export interface BracketLeg {
  type: string; // limit | take-profit-market | take-profit-limit | stop-market | stop-limit
  stop_price?: string | null;
  limit?: string | null;
  percent?: string | null; // a level in percent of the parent's average fill ("3": 3%); its price is null until the fill
  trailing_delta?: string | null; // a trailing stop-loss: "2%" or a price distance, following from the fill
}

export interface Bracket {
  take_profit: BracketLeg | null; // a bracket may have one leg
  stop_loss: BracketLeg | null;
  trigger: string; // last | mark | bid_ask
}

export interface Fill {
  id: number;
  account?: number;
  order_id: number;
  exchange: string;
  side: "buy" | "sell";
  symbol: string;
  exec_amount: string;
  exec_price: string;
  fee: string;
  fee_currency: string;
  timestamp: string;
}

export interface Wallet {
  currency: string;
  exchange: string;
  id: number | null;
  account?: number; // a wallet set's wallets name their account (the aggregates do not)
  balance: string;
  available: string;
  hold: string;
  present_value?: { balance_usd: string | null; available_usd: string | null; hold_usd: string | null };
}

export interface WalletSet {
  id: number | string;
  description: string;
  run_id: string | null;
  active?: boolean;
  type: string;
  created_at?: string;
  accounts?: number[]; // whose funds it holds (a set of the user's, or pushed on `wallet_set`)
  wallets: Wallet[];
}

export interface Ticker {
  exchange: string;
  symbol: string;
  pair: string;
  base: string;
  quote: string;
  price: string;
  bid: string | null;
  ask: string | null;
  time: number;
}

/** A market's public trade (`GET /api/v1/trades/...`, the `public_trades` channel); `side` is the taker's. */
export interface PublicTrade {
  exchange: string;
  symbol: string;
  pair: string;
  id: string;
  time: number;
  price: string;
  amount: string;
  side: "buy" | "sell";
}

export interface WalletHistory {
  timestamp: number;
  id: number;
  run_id: string | null;
  current: WalletSet;
  /** [unix seconds, the wallet after one movement] */
  data: [number, Wallet][];
}

export interface Book {
  symbol: string;
  synced: boolean;
  bids: [string, string][];
  asks: [string, string][];
}

export interface Rule {
  action: string;
  subject: string;
  own_only: boolean;
}

export interface Abilities {
  user: { id: number; username: string; role: string; plan: string };
  scopes: string[] | null;
  rules: Rule[];
  channels: string[];
}

export interface Runnable {
  name: string;
  doc: string;
  module_doc: string;
  parameters: { name: string; type: string; default: unknown }[];
}

export interface RunSummary {
  run_id: string;
  strategy?: string;
  mode?: string;
  status: string;
  [key: string]: unknown;
}

/** `GET /api/v1/auth/registration`: whether anyone may create an account, and what the form offers. */
export interface RegistrationStatus {
  open: boolean;
  currencies?: string[];
  password_min_length?: number;
  password_max_length?: number;
}

/** `GET/PUT /api/v1/admin/settings`: what an admin changes at runtime. */
export interface SiteSettings {
  self_registration: boolean;
  registration_role: "viewer" | "trader";
}

/** `GET /api/v1/users` (admins). */
export interface User {
  id: number;
  username: string;
  role: string;
  plan: string;
  disabled: boolean;
  created_at: number; // unix seconds
}

/** What a schedule runs: its kind and the fields that kind needs (docs/SCHEDULING.md). */
export interface ScheduleJob {
  kind: "retrieve_rates" | "run_strategy" | "strategy_step" | "housekeeping" | string;
  [field: string]: unknown;
}

/** `GET /api/v1/schedules[/{id}]`: one schedule; `next_runs` has one entry in lists, five for one schedule, none while paused. */
export interface Schedule {
  id: number;
  name: string;
  owner_id: number;
  system: boolean; // the server's own (owner 0): only admins see it
  cron: string | null;
  every: string | null;
  timezone: string;
  job: ScheduleJob;
  misfire: { policy: "skip" | "catch_up"; limit: number };
  paused: boolean;
  created_at: number; // ms
  next_runs: { at: string; ms: number }[];
  last_tick: { tick_at: number; at: string; finished_at: number | null; outcome: string; error: string | null } | null;
}

/** `GET/PUT /api/v1/me/notifications`: a user's channels and which events go to which. Secrets come back as "set" (or null). */
export interface NotificationSettings {
  channels: {
    email?: { address: string };
    telegram?: { bot_token?: string | null; chat_id: string };
    webhook?: { url: string; secret?: string | null };
  };
  events: Record<string, string[]>;
}

/** A notification parked after its attempts were spent (`GET /api/v1/me/notifications/dead_letters`); times in ns. */
export interface DeadLetter {
  id: number;
  key: string;
  channel: string;
  event: string;
  subject: string;
  state: string;
  attempts: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

/** `POST /api/v1/me/notifications/test`: sent, or the reason it was not. */
export interface TestAnswer {
  channel: string;
  sent: boolean;
  reason?: string;
}

/** A perpetual position's leg: `both` in one-way mode, `long` or `short` in hedge mode. */
export type PositionSide = "both" | "long" | "short";

/** `get_positions` and the `positions_updated` push: one position, money in the settle currency (docs/DERIVATIVES.md). */
export interface PositionView {
  account: number;
  exchange: string;
  symbol: string;
  position_side: PositionSide;
  side: "long" | "short" | "flat";
  size: string; // absolute
  entry_price: string;
  mark_price: string;
  notional: string;
  unrealised_pnl: string;
  realised_pnl: string;
  funding: string; // received +, paid -
  fees: string;
  leverage: number;
  margin_mode: "isolated" | "cross";
  isolated_margin: string | null;
  initial_margin: string;
  maintenance_margin: string;
  margin_ratio: string; // "0.0123" = 1.23%; 1 liquidates
  liquidation_price: string | null;
  wallet_set_id: number | null;
  updated_at: number; // ns
  seq: number;
}

/** `get_funding`: one funding payment of one position. */
export interface FundingEntry {
  id: number;
  account: number;
  wallet_set_id: number | null;
  size: string; // the position's size when it was settled
  currency: string; // the settle currency
  exchange: string;
  symbol: string;
  position_side: PositionSide;
  rate: string; // "0.0001" = 0.01%
  mark_price: string;
  amount: string; // received +, paid -
  time: number; // ns
}

/** A rule or an action of a rule set, in the JSON form of core.rules (`kind` names it; decimals as strings). */
export interface RulePart {
  kind: string;
  [field: string]: unknown;
}

/** `GET /api/v1/rulesets/{id}`: a rule set with its live state (`status`, from core.rules.status). */
export interface RuleSet {
  id: number;
  owner_id: number;
  name: string;
  scope: "account" | "wallet_set" | "run" | "user";
  scope_id: string | null;
  mode: "live" | "dry_run";
  after: "once" | "rearm";
  cooldown: string | null;
  enabled: boolean;
  rules: RulePart[];
  actions: RulePart[];
  status?: unknown;
  created?: number;
  updated?: number;
}

/** One action's outcome in a firing. */
export interface FiringAction {
  index: number;
  kind: string;
  status: string; // pending | running | done | failed | recorded
  detail?: unknown;
}

/** `GET /api/v1/rulesets/{id}/firings`: when a rule set fired (seconds), the values that made it fire, what its actions did. */
export interface RuleFiring {
  id: number;
  rule_set_id: number;
  time: number;
  values: Record<string, string>;
  mode: string;
  actions: FiringAction[];
}
