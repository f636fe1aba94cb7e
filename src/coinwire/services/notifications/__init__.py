"""Notifications: channels (e-mail, Telegram, webhooks), receipts, the outbox and its worker."""
