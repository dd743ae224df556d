from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("companies", views.CompanyViewSet)
router.register("departments", views.DepartmentViewSet)
router.register("regions", views.RegionViewSet)
router.register("business-systems", views.BusinessSystemViewSet)
router.register("support-groups", views.SupportGroupViewSet)
router.register("vendors", views.VendorViewSet)
router.register("vendor-engineers", views.VendorEngineerViewSet)
router.register("service-catalog", views.ServiceCatalogItemViewSet)
router.register("users", views.UserViewSet)
router.register("approvals", views.ApprovalViewSet, basename="approval")
urlpatterns = router.urls
