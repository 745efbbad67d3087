"""The rater workstation: blinded scoring of photos and frame-accurate marking of refill videos.

No public archive of scored knee photographs or refill videos with a reference exists, so a team
that wants to measure agreement (``mottling agreement``) or retrain (``mottling train``) on its own
patients must first label them. ``mottling rate`` serves a page for that; every answer is stored the
moment it is given (``store``) and exported as one tidy CSV per rater in the column names the
agreement report and the training manifest read; ``consensus`` turns several raters into a manifest.

Modules: ``archive`` finds and sniffs the media, ``media`` renders what the page shows (metadata
stripped photos, per-frame JPEGs on the video's own timestamps), ``session`` holds a rater's order
and opaque ids, ``answers`` validates an answer, ``store`` keeps them, ``consensus`` combines raters,
``app`` is the HTTP layer. See docs/rating.md.
"""
