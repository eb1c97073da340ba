"""The ground floor: building blocks both apps use (problem details, the read-only admin base, money units).
Imports no app and not the project package, so either app may depend on it without a loop."""
