"""The trained models taupet-bids ships, as MONAI bundle folders, and the code that loads them."""
