"""An offline, stateful, deterministic service speaking OpenAI's API and Amazon Bedrock's, with simulated
models: the moto of synthtune's model providers.

See README.md in this folder for every simulated behaviour, knob and admin endpoint.
"""

from synthtune_cli.emulator.emulator import OpenAIEmulator
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import KnowledgeItem
from synthtune_cli.emulator.server import EmulatorServer

__all__ = ["EmulatorKnobs", "EmulatorServer", "KnowledgeItem", "OpenAIEmulator"]
