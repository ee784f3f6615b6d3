"""Readers that turn recordings and live flows into :class:`~cors_addon.exchange.Exchange`."""
