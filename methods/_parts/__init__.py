"""Pieces shared by several methods: the prompt learner, losses."""
