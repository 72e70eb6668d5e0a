"""The embedded local default: moto's server plus this project's Pulumi program run against it."""
