"""osum."""
