from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from apps.bjgas_platform.views.files import download_attachment

# Uploaded files are never served from MEDIA_URL: they go through `download_attachment`,
# which applies the record's scope rules.
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("desk/", admin.site.urls),
    path("notifications/", include("apps.bjgas_platform.urls")),
    path("files/<int:pk>/", download_attachment, name="attachment-download"),
    path("api/v1/", include("apps.bjgas_platform.api.urls")),
    path("api/v1/", include("apps.bjgas_ops.api.urls")),
    path("api/v1/auth/token/", obtain_auth_token, name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
