from django.contrib import admin
from django.urls import path

from lobby import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("online/<str:room>/", views.online),
]
