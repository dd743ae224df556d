"""What every process record can carry: comments, attachments and links to other records."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _

from .workflow import RecordLinkMixin


class CommentKind(models.TextChoices):
    REPLY = "reply", _("Public reply")
    NOTE = "note", _("Internal note")
    SUPPLEMENT = "supplement", _("Requester's supplement (补充说明)")
    SYSTEM = "system", _("System message")


class Comment(RecordLinkMixin):
    """A public reply, an internal note or a requester's supplement on a record."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=CommentKind.choices)
    body = models.TextField(_("text"))
    created_at = models.DateTimeField(_("at"), db_index=True)

    class Meta(RecordLinkMixin.Meta):
        verbose_name = _("comment")
        verbose_name_plural = _("comments")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.body[:40]

    @property
    def is_public(self) -> bool:
        return self.kind != CommentKind.NOTE


def attachment_path(instance: "Attachment", filename: str) -> str:
    return f"attachments/{instance.content_type_id}/{instance.object_id}/{filename}"


class Attachment(RecordLinkMixin):
    """A file attached to a record, optionally to one of its comments."""

    comment = models.ForeignKey(
        Comment,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="attachments",
        verbose_name=_("comment"),
    )
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=300)
    name = models.CharField(_("file name"), max_length=200)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    is_public = models.BooleanField(_("visible to the requester"), default=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta(RecordLinkMixin.Meta):
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("attachment-download", args=[self.pk])


class RecordLink(models.Model):
    """A link between two records of any kinds: incident ↔ problem, change, article, alert."""

    source_type = models.ForeignKey(
        ContentType, models.CASCADE, related_name="+", verbose_name=_("kind of source")
    )
    source_id = models.PositiveBigIntegerField(_("source id"))
    source = GenericForeignKey("source_type", "source_id")
    target_type = models.ForeignKey(
        ContentType, models.CASCADE, related_name="+", verbose_name=_("kind of target")
    )
    target_id = models.PositiveBigIntegerField(_("target id"))
    target = GenericForeignKey("target_type", "target_id")
    relation = models.CharField(_("relation"), max_length=30, default="related")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("record link")
        verbose_name_plural = _("record links")
        constraints = [
            models.UniqueConstraint(
                fields=["source_type", "source_id", "target_type", "target_id", "relation"],
                name="record_link_once",
            )
        ]
        indexes = [
            models.Index(fields=["source_type", "source_id"]),
            models.Index(fields=["target_type", "target_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.source} → {self.target}"
