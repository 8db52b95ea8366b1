"""The gendoc operator: reconciles DocGenerator resources into running fleets (docs/operator.md)."""
