from django.db import models


class BareRow(models.Model):
    """One row per bare POST. No migrations: the benchmark creates the table with the schema editor."""

    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    note = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "bare"

    def __str__(self):
        return f"{self.amount} {self.currency}"
