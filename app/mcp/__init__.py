"""The Model Context Protocol server (``server``): search, passages, citations and answer
attribution as MCP tools over stdio or Streamable HTTP."""
