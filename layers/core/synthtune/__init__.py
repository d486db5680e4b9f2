"""synthtune: distil a strong teacher model into a cheaper student model.

This package is the domain shared by every Lambda function (shipped as the layer). Handlers in
`functions/` stay thin and call into it; only the adapter modules (`aws`, `runs`, `artifacts`,
`providers`, `finetune.openai`) talk to boto3 or openai.
"""

__version__ = "0.1.0"
