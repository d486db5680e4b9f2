"""synthtune on a user's machine: the `synthtune` command, the offline runtime and the OpenAI emulator.

Nothing in this package is shipped to Lambda.
"""
