"""The dataset: scraping, image checks and preprocessing, validation, descriptive figures,
review, the suggestion ledger."""
