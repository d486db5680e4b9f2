"""The emulator's Amazon Bedrock: customisation jobs, custom models, deployments, Provisioned Throughput,
foundation models and Converse, on the same app and port as the OpenAI API.

See the Bedrock part of ../README.md for every simulated behaviour.
"""
