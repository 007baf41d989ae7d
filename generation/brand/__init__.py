"""The brand kit as designers see it: the Brand page (read-only; staff edit kits in the admin).

The kit itself is `models.BrandKit`; what applies it lives where it acts: banned words and
required terms in `jobs/recipe.py` (and the forms), the palette and icon canvas in `finishing/`.
"""
