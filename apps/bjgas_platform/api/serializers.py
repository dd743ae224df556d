"""Serializers of the organisation data and the workflow records' common parts."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import (
    ApprovalRequest,
    BusinessSystem,
    Company,
    Department,
    Region,
    ServiceCatalogItem,
    SupportGroup,
    TransitionLog,
    User,
    Vendor,
    VendorEngineer,
    WorkflowTransition,
)


class ModelCleanMixin:
    """Run the model's clean() so the API refuses what the desk refuses."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = self.instance or self.Meta.model()
        for key, value in attrs.items():
            if not isinstance(self.fields.get(key), serializers.ManyRelatedField):
                setattr(instance, key, value)
        from django.core.exceptions import ValidationError as DjangoValidationError

        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(
                exc.message_dict
                if hasattr(exc, "error_dict")
                else {"non_field_errors": exc.messages}
            ) from exc
        return attrs


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A link that accepts only records the requesting user may see."""

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        if request is not None and hasattr(queryset, "visible_to"):
            return queryset.visible_to(request.user)
        return queryset


class ScopedSerializer(ModelCleanMixin, serializers.ModelSerializer):
    serializer_related_field = ScopedRelatedField


class CompanySerializer(ScopedSerializer):
    class Meta:
        model = Company
        fields = ["id", "code", "name", "kind", "parent", "is_active"]


class DepartmentSerializer(ScopedSerializer):
    class Meta:
        model = Department
        fields = ["id", "code", "name", "company", "parent", "head", "is_active"]


class RegionSerializer(ScopedSerializer):
    class Meta:
        model = Region
        fields = ["id", "code", "name", "kind", "parent", "address"]


class BusinessSystemSerializer(ScopedSerializer):
    class Meta:
        model = BusinessSystem
        fields = [
            "id",
            "code",
            "name",
            "owner",
            "company",
            "criticality",
            "description",
            "is_active",
        ]


class SupportGroupSerializer(ScopedSerializer):
    class Meta:
        model = SupportGroup
        fields = ["id", "code", "name", "tier", "leader", "members", "email", "is_active"]


class VendorSerializer(ScopedSerializer):
    class Meta:
        model = Vendor
        fields = [
            "id",
            "code",
            "name",
            "categories",
            "contact_name",
            "contact_phone",
            "contact_email",
            "contract_start",
            "contract_end",
            "is_active",
        ]


class VendorEngineerSerializer(ScopedSerializer):
    class Meta:
        model = VendorEngineer
        fields = ["id", "vendor", "name", "user", "phone", "email", "skills", "is_active"]


class ServiceCatalogItemSerializer(ScopedSerializer):
    class Meta:
        model = ServiceCatalogItem
        fields = [
            "id",
            "code",
            "name",
            "parent",
            "owner",
            "business_system",
            "default_support_group",
            "default_workflow",
            "description",
            "is_active",
        ]


class UserSerializer(ScopedSerializer):
    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "full_name",
            "email",
            "company",
            "department",
            "phone",
            "extension",
            "employee_no",
            "is_active",
        ]
        read_only_fields = ["username"]


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowTransition
        fields = ["code", "label", "target_state", "comment_required", "approvals_required"]


class TransitionLogSerializer(serializers.ModelSerializer):
    actor = serializers.StringRelatedField()

    class Meta:
        model = TransitionLog
        fields = ["id", "action", "from_state", "to_state", "actor", "comment", "created_at"]


class RecordReferenceSerializer(serializers.Serializer):
    """Which record a row is about: its model's label, its id and its name."""

    model = serializers.CharField()
    id = serializers.IntegerField()
    name = serializers.CharField()


class ApprovalRequestSerializer(serializers.ModelSerializer):
    transition = TransitionSerializer(read_only=True)
    record = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "record",
            "transition",
            "from_state",
            "requested_by",
            "comment",
            "status",
            "approvals_required",
            "created_at",
            "decided_at",
        ]

    @extend_schema_field(RecordReferenceSerializer)
    def get_record(self, approval: ApprovalRequest) -> dict:
        # The viewsets hand over only requests on records the user may see.
        model = approval.content_type.model_class()
        record = approval.record if model is not None else None
        return {
            "model": model._meta.label if model is not None else approval.content_type.model,
            "id": approval.object_id,
            "name": str(record) if record is not None else "",
        }


class TakeTransitionSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    expected_version = serializers.IntegerField(required=False, min_value=0)


class DecideApprovalSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    comment = serializers.CharField(required=False, allow_blank=True, default="")
