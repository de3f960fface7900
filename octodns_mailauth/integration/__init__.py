"""The octoDNS side, used by the processor and the CLI alike: the config as
octoDNS reads it, which zone a name is in, what each zone gets, the merge."""
