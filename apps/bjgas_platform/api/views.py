"""API views of the organisation data, the workflow actions and approvals."""

from django.contrib.contenttypes.models import ContentType
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from ..models import (
    ApprovalRequest,
    BusinessSystem,
    Company,
    Department,
    Region,
    ServiceCatalogItem,
    SupportGroup,
    User,
    Vendor,
    VendorEngineer,
)
from ..services import workflow as engine
from . import serializers as s
from .base import ScopedModelViewSet
from .permissions import ActOnRecordPermission


class CompanyViewSet(ScopedModelViewSet):
    queryset = Company.objects.all()
    serializer_class = s.CompanySerializer
    search_fields = ["code", "name"]
    filterset_fields = ["kind", "parent", "is_active"]


class DepartmentViewSet(ScopedModelViewSet):
    queryset = Department.objects.select_related("company")
    serializer_class = s.DepartmentSerializer
    search_fields = ["code", "name"]
    filterset_fields = ["company", "parent", "is_active"]


class RegionViewSet(ScopedModelViewSet):
    queryset = Region.objects.all()
    serializer_class = s.RegionSerializer
    search_fields = ["code", "name"]
    filterset_fields = ["kind", "parent"]


class BusinessSystemViewSet(ScopedModelViewSet):
    queryset = BusinessSystem.objects.all()
    serializer_class = s.BusinessSystemSerializer
    search_fields = ["code", "name"]
    filterset_fields = ["company", "criticality", "is_active"]


class SupportGroupViewSet(ScopedModelViewSet):
    queryset = SupportGroup.objects.prefetch_related("members")
    serializer_class = s.SupportGroupSerializer
    search_fields = ["code", "name"]
    filterset_fields = ["tier", "is_active"]


class VendorViewSet(ScopedModelViewSet):
    queryset = Vendor.objects.prefetch_related("categories")
    serializer_class = s.VendorSerializer
    search_fields = ["code", "name"]
    filterset_fields = ["is_active"]


class VendorEngineerViewSet(ScopedModelViewSet):
    queryset = VendorEngineer.objects.select_related("vendor")
    serializer_class = s.VendorEngineerSerializer
    search_fields = ["name", "phone"]
    filterset_fields = ["vendor", "is_active"]


class ServiceCatalogItemViewSet(ScopedModelViewSet):
    queryset = ServiceCatalogItem.objects.all()
    serializer_class = s.ServiceCatalogItemSerializer
    search_fields = ["code", "name"]
    filterset_fields = ["parent", "business_system", "is_active"]


class UserViewSet(ScopedModelViewSet):
    queryset = User.objects.select_related("company", "department")
    serializer_class = s.UserSerializer
    search_fields = ["username", "full_name", "phone", "extension"]
    filterset_fields = ["company", "department", "is_active"]
    http_method_names = ["get", "patch", "head", "options"]


class WorkflowActionsMixin:
    """Adds `transitions`, `transition` and `history` to a process record's viewset.

    POSTs to the actions in `acting_actions` act on an existing record: they need the
    change permission, not the add permission a plain POST would.
    """

    acting_actions = {"transition"}

    def get_permissions(self):
        if self.action in self.acting_actions and self.request.method == "POST":
            return [ActOnRecordPermission()]
        return super().get_permissions()

    @extend_schema(responses=s.TransitionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def transitions(self, request, pk=None):
        """List the actions the current user may take on the record now."""
        record = self.get_object()
        allowed = engine.available_transitions(record, request.user)
        return Response(s.TransitionSerializer(allowed, many=True).data)

    @extend_schema(request=s.TakeTransitionSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Take an action; answers the record, or the approval request it opened."""
        record = self.get_object()
        payload = s.TakeTransitionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = engine.take_transition(record, actor=request.user, **payload.validated_data)
        body = {"record": self.get_serializer(result.record).data}
        if result.approval is not None:
            body["approval"] = s.ApprovalRequestSerializer(result.approval).data
        return Response(body)

    @extend_schema(responses=s.TransitionLogSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """List the record's state changes, oldest first."""
        record = self.get_object()
        return Response(s.TransitionLogSerializer(engine.record_history(record), many=True).data)


class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Approval requests on records the user may see; approvers decide them here."""

    serializer_class = s.ApprovalRequestSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["status"]

    def get_queryset(self):
        requests = ApprovalRequest.objects.select_related("transition", "content_type")
        visible_ids = []
        for ct_id in requests.values_list("content_type", flat=True).distinct():
            model = ContentType.objects.get_for_id(ct_id).model_class()
            if model is None or not hasattr(model.objects, "visible_to"):
                continue
            ids = model.objects.visible_to(self.request.user).values("pk")
            visible_ids += list(
                requests.filter(content_type_id=ct_id, object_id__in=ids).values_list(
                    "pk", flat=True
                )
            )
        return requests.filter(pk__in=visible_ids).prefetch_related("record")

    @extend_schema(request=s.DecideApprovalSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        """Approve or reject; the transition is taken when enough approvers agree."""
        approval = self.get_object()
        payload = s.DecideApprovalSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        decided = engine.decide_approval(approval.pk, request.user, **payload.validated_data)
        return Response(s.ApprovalRequestSerializer(decided).data)
