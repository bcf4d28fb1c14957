"""Governance: who may do what (policy), human approval (tickets), and the audit log."""
