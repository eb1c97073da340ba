"""The bare DRF POST `make bench-quotes` compares quotes against: a view that validates three fields and inserts one
row. An app of the benchmark only (bench.bare.settings adds it); never in the product's settings or URL map."""
