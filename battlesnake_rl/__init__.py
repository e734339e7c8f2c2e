"""battlesnake-rl: the command-line front of the toolkit (game, training, platform)."""
