"""Sanctions lists as loaded (payments/sanctions/load.py): one version per load and source, its entries, their names
and digital-currency addresses. docs/compliance.md, "Lists"."""

from django.db import models
from django.db.models import Q


class SanctionsListVersion(models.Model):
    """One load of one sanctions list (payments/sanctions/load.py). Exactly one version per source is current (a
    partial unique constraint); a new load inserts its version and flips `is_current` in one transaction, and the
    old versions stay for audit. docs/compliance.md, "Lists"."""

    class Source(models.TextChoices):
        OFAC_SDN = "ofac_sdn", "OFAC SDN"
        UN = "un", "UN consolidated"
        EU = "eu", "EU consolidated"
        OPENSANCTIONS = "opensanctions", "OpenSanctions"
        SAMPLE = "sample", "sample (development)"

    source = models.CharField(max_length=20, choices=Source.choices)
    file_format = models.CharField(max_length=20, help_text="The loader's format, e.g. ofac-xml.")
    published_on = models.DateField(null=True, blank=True, help_text="The list's own publication date, when it says.")
    loaded_at = models.DateTimeField(auto_now_add=True)
    loaded_by = models.CharField(max_length=150, blank=True)
    file_names = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, help_text="Of the files' bytes, in the order loaded.")
    entry_count = models.PositiveIntegerField()
    name_count = models.PositiveIntegerField(help_text="Primary names and aliases.")
    alias_count = models.PositiveIntegerField()
    address_count = models.PositiveIntegerField(help_text="Digital-currency (wallet) addresses.")
    is_current = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source"], condition=Q(is_current=True),
                                               name="one_current_sanctions_version_per_source")]
        indexes = [models.Index(fields=["source", "-loaded_at"])]

    def __str__(self):
        return f"{self.get_source_display()} #{self.pk} ({self.published_on or 'undated'}, {self.entry_count} entries)"


class SanctionsEntry(models.Model):
    """A listed person, organisation, vessel... as one version of one list has it."""

    class Kind(models.TextChoices):
        PERSON = "person", "person"
        ENTITY = "entity", "entity"
        VESSEL = "vessel", "vessel"
        AIRCRAFT = "aircraft", "aircraft"
        WALLET = "wallet", "wallet (address only)"
        OTHER = "other", "other"

    version = models.ForeignKey(SanctionsListVersion, on_delete=models.PROTECT, related_name="entries")
    source_id = models.CharField(max_length=200, help_text="The list's own id (OFAC ent_num, UN DATAID, EU logicalId...).")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    primary_name = models.CharField(max_length=500)
    birth_dates = models.JSONField(default=list, blank=True, help_text="ISO dates, YYYY-MM or YYYY as the list gives.")
    nationalities = models.JSONField(default=list, blank=True, help_text="ISO 3166 alpha-2 codes where known.")
    countries = models.JSONField(default=list, blank=True, help_text="Countries of the listed postal addresses.")
    programs = models.JSONField(default=list, blank=True)
    remarks = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "sanctions entries"
        constraints = [models.UniqueConstraint(fields=["version", "source_id"], name="one_sanctions_entry_per_list_id")]

    def __str__(self):
        return f"{self.primary_name} ({self.source_id})"


class SanctionsName(models.Model):
    """Every name an entry is listed under: its primary name (is_alias false) and each alias."""

    entry = models.ForeignKey(SanctionsEntry, on_delete=models.PROTECT, related_name="names")
    name = models.CharField(max_length=500)
    is_alias = models.BooleanField(default=False)
    script = models.CharField(max_length=20, blank=True, help_text="Latin, Cyrillic, ... or mixed.")

    def __str__(self):
        return self.name


class SanctionsAddress(models.Model):
    """A digital-currency address an entry is listed with ("Digital Currency Address - ETH ..." at OFAC)."""

    entry = models.ForeignKey(SanctionsEntry, on_delete=models.PROTECT, related_name="addresses")
    currency = models.CharField(max_length=20, blank=True)
    address = models.CharField(max_length=200, help_text="As the list writes it.")
    normalised = models.CharField(max_length=200, db_index=True, help_text="Lower-cased: compared case-insensitively.")

    class Meta:
        verbose_name_plural = "sanctions addresses"

    def __str__(self):
        return f"{self.currency} {self.address}"
