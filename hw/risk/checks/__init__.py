"""The stateless checks of rule 5: one order's values against its limits, one reason bit each."""
