"""Test helpers shared by the tiers (tests/unit, tests/integration, tests/e2e): builders of the inputs a
stage reads, a git + DVC project copy, bad-file makers, a fault-injecting S3 proxy. Not tests."""
