"""One service per feature. Services own transactions and never import the web layer."""
