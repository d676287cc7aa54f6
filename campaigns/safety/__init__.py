"""Content safety (issue 18 parts 1-3): categories with a per-campaign action, the `moderation`
provider kind (classifiers/), and the GM's review queue. App label `safety`."""
