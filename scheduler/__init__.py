"""The scheduler process: registers Diwan's periodic jobs with APScheduler.

Job bodies are ordinary core functions (the CLI and the admin API call the same
ones); this package only decides when they run.
"""
