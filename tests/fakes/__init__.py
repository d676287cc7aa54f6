"""Fakes of the vendors we talk to, for contract tests: each speaks its vendor's wire format on
127.0.0.1 so the real SDKs run over real sockets and no test reaches the network.

wire_server.py: the OpenAI and Anthropic chat APIs (streaming included). embed_server.py: OpenAI's
embeddings endpoint.
"""
