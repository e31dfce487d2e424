"""Pure notification content: SMS text and its encoding rules. No I/O, no Django models."""
