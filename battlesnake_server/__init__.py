"""battlesnake_server — play an exported policy (or a bot) in the Battlesnake arena.

The HTTP server of the Battlesnake API v1 (``battlesnake-rl serve``), the safety layer between a policy and the
arena, a referee that plays full games over HTTP as the official CLI does (``battlesnake-rl play``), and the handler
functions of a SageMaker endpoint. It reads boards with the engine of ``battlesnake_gym`` and loads policies with
``battlesnake_policy.load_policy``; it never imports Ray or the SageMaker SDK.
"""
