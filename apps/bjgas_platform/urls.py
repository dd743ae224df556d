"""Pages of the platform: the notification bell (mounted at /notifications/)."""

from django.urls import path

from .views import notifications as views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_list, name="list"),
    path("unread.json", views.unread_json, name="unread"),
    path("<int:pk>/read/", views.mark_read, name="read"),
    path("read-all/", views.mark_all_read, name="read_all"),
    path("preferences/", views.save_preferences, name="preferences"),
]
